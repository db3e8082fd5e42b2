"""Git on a workspace through GitPython (argv lists only, never a shell). ``workspace.gitops`` is the public face."""
