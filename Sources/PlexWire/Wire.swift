/// The wire models: frames and their bodies, apart from the domain types in PlexCore.
///
/// See `proto/README.md` for the byte layout.
public enum Wire {
    /// The protocol version this build speaks. A frame with another version closes the connection.
    public static let protocolVersion: UInt8 = 1
    /// Bytes in the fixed header after the length prefix: version, kind, flags, correlation id.
    public static let headerSize = 12
    /// Bytes of the length prefix.
    public static let lengthPrefixSize = 4
    /// The default largest frame accepted (length prefix excluded): 16 MiB.
    public static let defaultMaximumFrameSize = 16 * 1024 * 1024
}
