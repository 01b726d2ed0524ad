"""Readers of the on-disk formats: archives and folders, CIFAR pickles, MNIST IDX, image-folder trees, digits."""
