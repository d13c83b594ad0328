"""Python SDK for the Emoscope emotion-detection API.

    import emoscope

    client = emoscope.Client(api_key="emo_...")          # or $EMOSCOPE_API_KEY
    result = client.analyze("photo.jpg")
    for face in result.faces:
        print(face.box, face.emotions.dominant, face.emotions.top(3))
"""
from . import webhooks
from ._client import (AccountResource, AsyncAccountResource, AsyncBilling, AsyncClient, AsyncJobs, AsyncKeys,
                      AsyncStudies, AsyncUsageResource, Billing, Client, Jobs, Keys, Studies, UsageResource, sign_in,
                      sign_up)
from ._exceptions import (APIConnectionError, APIError, APITimeoutError, AuthenticationError, EmoscopeError,
                          InvalidParam, InvalidRequestError, PaymentRequiredError, PermissionDeniedError,
                          QuotaExceededError, RateLimitError, SignatureVerificationError)
from ._models import (EMOTIONS, Account, AccountSummary, AnalysisResult, ApiKey, Box, ComparedStudy, DataDeletion,
                      EmotionPeak, Emotions, EmotionSummary, Face, Frame, HeadPose, ImageResult, Job, JobProgress,
                      JobWebhook, Landmarks, Media, MicroExpression, ModelVersions, Quota, RateLimit, RegionMovement,
                      ReportLink, ScoreDifference, ScoreInterval, SignUpResult, Still, Study, StudyComparison,
                      StudyDifferences, StudyReport, StudySummary, Subscription, TimelinePoint, TopMoment, Track,
                      TrackSummary, Usage, UsageDay, VariableBreakdown, VariableGroup, VideoResult, parse_analysis)
from ._version import __version__

__all__ = [
    "__version__", "Client", "AsyncClient", "sign_up", "sign_in", "webhooks", "parse_analysis",
    "Keys", "Jobs", "UsageResource", "AccountResource", "AsyncKeys", "AsyncJobs", "AsyncUsageResource",
    "AsyncAccountResource", "Studies", "AsyncStudies", "Billing", "AsyncBilling", "Job", "JobProgress", "JobWebhook",
    # results
    "EMOTIONS", "AnalysisResult", "ImageResult", "VideoResult", "Face", "Box", "Landmarks", "HeadPose", "Emotions",
    "Media",
    "ModelVersions", "Frame", "Track", "TrackSummary", "TimelinePoint", "MicroExpression", "RegionMovement", "Still",
    "ApiKey", "Usage", "UsageDay", "Account", "AccountSummary", "Quota", "RateLimit", "SignUpResult",
    "Study", "StudyReport", "StudySummary", "EmotionSummary", "EmotionPeak", "ScoreInterval", "TopMoment",
    "StudyComparison", "ComparedStudy", "StudyDifferences", "ScoreDifference", "VariableBreakdown", "VariableGroup",
    "ReportLink",
    "DataDeletion", "Subscription",
    # errors
    "EmoscopeError", "APIConnectionError", "APITimeoutError", "AuthenticationError", "PermissionDeniedError",
    "InvalidRequestError", "InvalidParam", "QuotaExceededError", "PaymentRequiredError", "RateLimitError", "APIError",
    "SignatureVerificationError",
]
