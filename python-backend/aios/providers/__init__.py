"""LLM providers behind one interface; each adapter is a small module found by name."""
