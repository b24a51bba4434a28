"""Built-in plugins; each folder is one plugin, switched on per merchant in the marketplace."""
