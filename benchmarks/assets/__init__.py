"""The embedded offline default: real data and trained models built from package-registry files."""
