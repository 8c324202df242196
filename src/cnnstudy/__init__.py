"""cnnstudy: a reproducible study of one-change-at-a-time CNN tuning on MNIST."""
