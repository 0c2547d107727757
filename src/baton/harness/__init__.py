"""The demo, storms, benches and load generators: edges that drive a whole Baton."""
