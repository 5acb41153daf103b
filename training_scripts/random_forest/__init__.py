"""The Random Forest candidate: train.py (script mode), inference.py (serving), contract.py."""
