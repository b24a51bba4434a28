"""The scale bench: ``python -m bench`` seeds large data sets and compares Neighbourly to bare floors."""
