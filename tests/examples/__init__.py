"""The client configurations in examples/, held to the formats their clients document."""
