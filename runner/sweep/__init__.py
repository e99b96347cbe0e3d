"""Sweeps: a study file's matrix of runs, each cell a resumable run (`python -m runner sweep`).

study (the file, checked), cells (the matrix and the data shares, pure), data (a cell's input
files), state (a cell's record), locks (sites held by one cell at a time), targets (the demo
federation or an inventory), runcell (one cell), run (the whole sweep), summary and page
(what a sweep leaves beside its cells).
"""
