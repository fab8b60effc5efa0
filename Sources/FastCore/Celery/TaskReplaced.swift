/// A task handing its work over to a workflow that inherits its task id
/// (Celery's `Task.replace`): `throw ctx.replace(with: .chord(header, body))`.
public struct TaskReplaced: Error, Sendable {
    public var canvas: Canvas
    public init(canvas: Canvas) { self.canvas = canvas }
}
