@_exported public import PlexCluster
// One import for users: the actor API, the node runtime and the transport types they configure.
@_exported public import PlexCore
@_exported public import PlexTransport
@_exported public import PlexWorkflow
