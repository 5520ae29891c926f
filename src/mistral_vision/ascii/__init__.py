"""ASCII-art rendering (images -> text grids) and its inverse."""
