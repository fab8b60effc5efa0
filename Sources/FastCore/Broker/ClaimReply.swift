/// What reading a part of a claim gave.
enum ClaimReply {
    /// Deliveries taken; a claim that took fewer than `asked` found the queues drained
    /// (nil: the claim cannot tell).
    case took([Delivery], asked: Int?)
    /// Redis had lost the claim script: `retry` once every later reply is read.
    case scriptLost(DeliveryClaim.Pending)
    /// Redis refused the claim (LOADING, BUSY, …): the connection stays, the next claim waits a while.
    case refused(String)
    /// The consumed lists' lengths: whether every one was empty.
    case lengths(allEmpty: Bool)
    /// Nothing for the engine (records written).
    case none
}
