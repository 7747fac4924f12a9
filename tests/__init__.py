"""align3d test suite (a regular package, so that no installed top-level ``tests`` package, such as the one ccpem-utils ships, shadows it)."""
