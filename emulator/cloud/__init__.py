"""The cloud assembly `cdk synth` writes (assembly, intrinsics, names) and what deploying it locally made of it (deploy, deployment)."""
