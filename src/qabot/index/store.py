"""Former home of the index layout and the loaded index, kept so old imports still work.

The on-disk layout (folders, CURRENT, the writer lock, publish, prune, verify) is in
qabot.index.layout; the loaded index and open_index are in qabot.index.loaded.
"""

from qabot.index.layout import (  # noqa: F401
    CACHE,
    CURRENT,
    FORMAT,
    KEEP_VERSIONS,
    LOCK,
    VERSIONS,
    IndexBusyError,
    IndexDamagedError,
    IndexMismatchError,
    IndexMissingError,
    IndexStoreError,
    current_version,
    new_version_name,
    prune_versions,
    publish_version,
    read_manifest,
    writer_lock,
)
from qabot.index.loaded import LoadedIndex, open_index  # noqa: F401
