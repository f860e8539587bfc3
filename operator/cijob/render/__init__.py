"""Pure builders of what a CiJob attempt needs: its Pod, its names, its scripts."""
