"""What the command modules share: the one error path, common options, model arguments and
scale-out flags."""
