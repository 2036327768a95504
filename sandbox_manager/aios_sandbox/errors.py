"""Domain errors, each with the HTTP status and code the API answers with."""


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra


class EgressDisabled(ServiceError):
    status, code = 403, "egress_disabled"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "busy"


class TooLarge(ServiceError):
    status, code = 413, "too_large"


class Invalid(ServiceError):
    status, code = 422, "invalid_request"


class AtCapacity(ServiceError):
    status, code = 429, "at_capacity"

    def __init__(self, message: str, retry_after_s: int = 1):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(ServiceError):
    status, code = 503, "unavailable"
