"""From the results store to what people read: tables (:mod:`.table`, rendered by :mod:`.render`), paired
statistics (:mod:`.stats`), the published numbers (:mod:`.published`), figures (:mod:`.figures`, and the image x
method grids of :mod:`.grids`), the HTML report (:mod:`.page`; ``python -m benchmarks.report <out_dir>``) and W&B
logging (:mod:`.wandb_log`)."""
