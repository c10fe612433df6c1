#include <sqlite3.h>

/// Closing the last connection to a WAL database leaves the write-ahead log as it is instead of copying it into
/// the database and deleting it (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`), as when the process dies. A wrapper
/// because Swift cannot call the variadic `sqlite3_db_config`.
static inline int plex_sqlite3_skip_checkpoint_on_close(sqlite3 *db) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}
