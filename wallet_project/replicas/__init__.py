"""Read replicas: reads that tolerate a little staleness, on PostgreSQL streaming replicas.

`DATABASE_REPLICA_URLS` adds the replicas as `replica_1`, `replica_2`, ...
Nothing reads them unless marked (`reads`): history lists, the events feed,
the admin's changelists and the ledger export are. Everything else reads
and writes the primary (`router`). A user who has just written reads the
primary (`recent_writes`), and a replica that is behind, down, or not in
recovery is skipped (`monitor`). docs/SCALING.md says how to run them.

| module | what |
|---|---|
| `reads` | `@replica_reads` (views), `read_from_replica`, `replica_alias`, `recheck_on_primary` |
| `router` | `ReplicaRouter`: the primary unless a marked read chose a replica; migrations on the primary |
| `routing` | the context variable that says which replica the current read chose |
| `monitor` | each replica's lag and state, checked at most once a second per process; `/ready/` reports them |
| `recent_writes` | read-your-writes: the per-user marker in Redis, set by a movement's lock release or the middleware |
| `admin` | `ReplicaChangelistMixin`: the back office's lists from a replica |
"""
