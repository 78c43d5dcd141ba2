"""Kubernetes runner: runs go to a real cluster exactly as EKS IRSA does it (see docs/kubernetes.md).

Needs the optional ``kubernetes`` client (``pip install rolebridge[kubernetes]``).
"""
