"""Queue names. The worker listens to all of them, in this order of priority."""


class QueueNames:
    # Inbound messages first: residents are waiting for their acknowledgement.
    INTAKE = "intake"
    DELIVERY = "delivery"
    WORKFLOW = "workflow"
    BROADCAST = "broadcast"


def all_queues() -> list[str]:
    return [QueueNames.INTAKE, QueueNames.DELIVERY, QueueNames.WORKFLOW, QueueNames.BROADCAST]
