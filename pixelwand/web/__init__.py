"""HTTP assembly: Starlette middleware and endpoints around the schema and REST layer.

Part of the composition root: domain modules never import from here.
"""
