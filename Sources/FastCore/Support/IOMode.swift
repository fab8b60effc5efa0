import CEventShim
import Foundation

/// How files are read: io_uring, plain `read(2)` (`socket`, the name the
/// worker's `--io` flag shares with its network path), or `auto`: io_uring
/// unless the kernel or a seccomp profile refuses it (Docker's default does).
public enum IOMode: String, Sendable, CaseIterable {
    case uring, socket, auto
}
