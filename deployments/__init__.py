"""Deployment tooling: the embedded local AWS, the CloudFormation stack, the Lambda package."""
