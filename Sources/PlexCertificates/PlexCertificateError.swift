/// A certificate, key or file that cannot be made, read or used, with what went wrong.
public struct PlexCertificateError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
