"""WaveNet: the PnF audio prior, its fast-generation cache and the importer of the authors'
released WaveNets.
"""
