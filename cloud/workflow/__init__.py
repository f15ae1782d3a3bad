"""Integrated supervision workflow (§8): clues → analysis → dispatch → inspection | enforcement."""
