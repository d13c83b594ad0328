"""The web layer: the Flask factory, blueprints (routes/), request guards, problem documents, pages."""
