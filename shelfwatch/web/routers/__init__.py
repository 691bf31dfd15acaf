"""One APIRouter per page group, split the way the roles use them: auth (everyone), forecasts
(planners), alerts (store managers), cx (the CX team), operations (planners and admins)."""
