"""A local AWS emulator (moto in server mode on 127.0.0.1) for deploying the stacks without an AWS account."""
