import {Domain} from "@web/core/domain";
import {DomainField, domainField} from "@web/views/fields/domain/domain_field";
import {registry} from "@web/core/registry";

/**
 * A domain over contacts (a playbook's client filter) whose record count and
 * records are those of the lifecycle clients it selects, not of every contact.
 */
export class LifecycleClientDomainField extends DomainField {
    getEvaluatedDomain(props = this.props) {
        const domain = super.getEvaluatedDomain(props);
        if (domain.isInvalid) {
            return domain;
        }
        return Domain.and([domain, [["is_lifecycle_client", "=", true]]]).toList();
    }
}

registry.category("fields").add("crm_lifecycle_client_domain", {
    ...domainField,
    component: LifecycleClientDomainField,
});
