/// A part of a claim sent ahead, whose reply is read in its turn.
enum ClaimInFlight {
    /// The claim script (`DeliveryClaim`).
    case script(DeliveryClaim.Pending)
    /// A claim by move: each list's registration, the moving transaction and the reads
    /// of the claiming lists (`ClaimByMove.append`).
    case move([(key: String, count: Int)])
    /// LLEN of each consumed list (what the next claim by move plans from).
    case lengths([String])
    /// The transaction recording what claims by move took (`ClaimByMove.appendRecords`).
    case records(replies: Int)
}
