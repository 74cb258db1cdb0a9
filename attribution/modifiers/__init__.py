"""Modifiers that wrap any attribution method: noise averaging (SmoothGrad, SmoothGrad-squared, VarGrad) and
post-processing of the map (XRAI regions)."""
