"""Kubernetes: each organization's code server as a Deployment and Service, kept by Dalgo's controller."""
