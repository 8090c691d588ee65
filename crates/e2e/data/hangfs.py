#!/usr/bin/python3
"""A file system whose lookups of names containing "hang" never answer, until a release
file appears: a hung NFS, autofs or FUSE mount, for the tests of the service's event loop.

    hangfs.py MOUNTPOINT RELEASE_FILE
"""
import errno
import os
import stat
import sys
import time

try:
    from fusepy import FUSE, FuseOSError, Operations
except ImportError:
    from fuse import FUSE, FuseOSError, Operations


class HangFs(Operations):
    def __init__(self, release):
        self.release = release

    def getattr(self, path, fh=None):
        if "hang" in path:
            while not os.path.exists(self.release):
                time.sleep(0.05)
            raise FuseOSError(errno.ENOENT)
        if path == "/":
            now = time.time()
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2, "st_uid": 0, "st_gid": 0,
                    "st_atime": now, "st_mtime": now, "st_ctime": now}
        raise FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        return [".", ".."]


if __name__ == "__main__":
    mountpoint, release = sys.argv[1], sys.argv[2]
    FUSE(HangFs(release), mountpoint, foreground=True, nothreads=False, allow_other=True)
