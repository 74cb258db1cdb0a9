"""Where results live: the results store (one Parquet file per shard), the attribution cache, provenance."""
