"""The WeChat side: webhook blueprints, push checks, outbound API clients."""
