"""What the emulator keeps on disk: where each thing lives (layout), records, pages of listings."""
