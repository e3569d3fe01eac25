"""The model repository: manifests in models/, offline builds into a cache, golden checks."""
