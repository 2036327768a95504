"""The agent: a model that calls tools in a loop, with conversations that continue."""
