"""Training: the resumable epoch loop shared by every trainer, and the trainers themselves."""
