"""Data sources: registered IDX datasets (MNIST, Fashion-MNIST) and users' image folders."""
