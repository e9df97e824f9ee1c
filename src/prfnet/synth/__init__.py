"""Synthetic CLIC-format data for demonstrations and tests (``prfnet synth``, ``docs/synthetic.md``): reference
images, distortions, real codecs at matched bits per pixel (:mod:`.codecs`), and votes simulated from a hidden
judge (:mod:`.judge`). NOT human judgments.

- :mod:`.distortion_set`: ``synthesize_clic``, labels known by construction (``--kind distortions``);
- :mod:`.codec_set`: ``synthesize_codec_clic``, real codecs and simulated votes (``--kind codecs``, the demo's);
- :mod:`.codec_triplets`: the codec set's pair choice, simulated votes and scoring.
"""
