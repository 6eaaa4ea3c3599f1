"""`make bench`: measure Mini-Dropbox against the disk, nginx, rclone and rsync in one run."""
