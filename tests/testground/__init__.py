"""The test ground: a real Kubernetes control plane on loopback, and a simulated kubelet."""
