"""Training: baseline SFT and the polychromic objective (DESIGN.md section 6)."""
