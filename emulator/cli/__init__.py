"""The `python -m emulator` command line: commands, progress printing, the drop-folder watcher."""
