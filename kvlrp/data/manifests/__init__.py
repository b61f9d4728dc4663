"""Manifests: the ``path,label[,split,video_id,group]`` CSV of a dataset, the layouts it is
built from (class folders, UCF101, HMDB51, Kinetics, MMAction), split assignment, split
leakage checks and the policy of which paths ``kvlrp prepare`` may open."""
