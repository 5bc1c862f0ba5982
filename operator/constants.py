"""Names other tools rely on: the resource's group, version and plural, annotation keys,
condition types and reasons."""

GROUP = "ala.io"
VERSION = "v1alpha1"
PLURAL = "llmdeployments"
KIND = "LLMDeployment"

ANNOTATION_PREFIX = "ala.io/"
ANNOTATION_REPLICAS = ANNOTATION_PREFIX + "recommended-replicas"
ANNOTATION_BATCH = ANNOTATION_PREFIX + "recommended-batch-size"
ANNOTATION_CONFIDENCE = ANNOTATION_PREFIX + "confidence"
ANNOTATION_UPDATED = ANNOTATION_PREFIX + "recommendation-time"

COND_SPEC_VALID = "SpecValid"
COND_METRICS = "MetricsAvailable"
COND_FITTED = "ModelFitted"
COND_RECOMMENDATION = "RecommendationProvided"
COND_LOW_CONFIDENCE = "LowConfidence"
CONDITION_TYPES = (COND_SPEC_VALID, COND_METRICS, COND_FITTED, COND_RECOMMENDATION, COND_LOW_CONFIDENCE)

MODE_RECOMMEND = "Recommend"
MODE_APPLY = "Apply"
